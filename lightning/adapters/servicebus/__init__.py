"""Azure Service Bus adapter (the ``Queue`` port on Service Bus queues)."""
