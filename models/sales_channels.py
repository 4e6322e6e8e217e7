"""Sales channels (web shop, marketplace, retail...) and the customer many-to-many."""

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class SalesChannel(Base):
    __tablename__ = "sales_channel"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)


class CustomerSalesChannel(Base):
    __tablename__ = "customer_sales_channel"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    sales_channel_id: Mapped[int] = mapped_column(
        ForeignKey("sales_channel.id", ondelete="RESTRICT"), primary_key=True
    )

    # Reverse index: "customers in channel X" is a search filter; customer_id in the key
    # answers it from the index alone, in customer id order (migration 0018).
    __table_args__ = (
        Index("ix_customer_sales_channel_channel", "sales_channel_id", "customer_id"),
    )
