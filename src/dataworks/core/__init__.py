"""Pure decisions (pure layer): validation, planning and policies; no I/O, `now` passed in."""
