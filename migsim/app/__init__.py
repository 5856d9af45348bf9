"""The planner's explorer: a local web page over the engine (``migsim serve``).

`migsim.app.levers` turns a scenario into the controls a planner thinks in and
the page's values back into a scenario; `migsim.app.session` runs it and the
scenario as loaded under common random numbers, per browser tab;
`migsim.app.server` is the web application. Nothing here is imported by
``import migsim`` or ``migsim --help``: the CLI imports it inside ``serve``.
"""
