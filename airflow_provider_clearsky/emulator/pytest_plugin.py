"""pytest fixtures that start the ClearSKY emulator on a free loopback port."""
