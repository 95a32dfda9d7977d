"""Domain rules shared by the provider's components, each module one idea."""
