"""Resource models (pure layer): the one definition of every dataworks resource."""
