"""The routing core: a pure state machine; commands and the time in, events and actions out."""
