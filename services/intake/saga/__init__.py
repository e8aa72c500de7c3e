"""Moving batches on: commands, submission, the Kafka edge, wake-ups."""
