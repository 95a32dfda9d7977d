"""A local emulator of the ClearSKY Vision API (see ``clearsky-emulator --help``)."""
