"""pipeline-ctl (edge layer): commands fetch data, call pure render functions, print."""
