"""Print the schema's SDL: `python -m server.sdl > schema.graphql`."""

from server.api import schema

if __name__ == "__main__":
    print(schema.as_str())
