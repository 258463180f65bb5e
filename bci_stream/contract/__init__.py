"""What the trainer and the live decoder both import: the model card and the transforms it names (the train -> live contract). Never imports pylsl."""
