"""The machine being simulated: its hardware configuration, read, validated and described."""
