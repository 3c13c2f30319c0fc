"""The application layer: commands, services and event dispatch. Talks to ports only."""

from orderkit.service.commands import PlaceOrder
from orderkit.service.dispatch import Dispatcher
from orderkit.service.orders import OrderService
from orderkit.service.settings import ShopSettings

__all__ = ["Dispatcher", "OrderService", "PlaceOrder", "ShopSettings"]
