"""The pages of noticing, one module each."""
