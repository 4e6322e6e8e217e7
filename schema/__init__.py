"""GraphQL types, inputs, enums and payloads, one module per domain word; schema.root merges
the root types. The Schema object itself is built in server/api.py, the composition root
(it adds server/'s extensions), so nothing here imports server/."""
