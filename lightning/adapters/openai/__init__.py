"""The ``openai`` SDK: client construction, chat tool calls, fine-tuning."""
