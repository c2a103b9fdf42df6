"""A member's clean exit (#20 part 5)."""
