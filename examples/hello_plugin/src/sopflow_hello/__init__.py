"""sopflow-hello: the example plugin of docs/plugin-authoring.md.

``plugin`` holds the hooks (the entry point), ``channel`` the console channel,
``greet`` the inbound route, the SOP action and the periodic job.
"""
