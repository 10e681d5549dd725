"""The operator console: server-rendered pages at ``/console`` for the people who
run the follow-up (the board, customer pages, SOP data pages and editor, channels).

It sits in its own layer just below ``api`` (``api.app`` mounts it): it calls the
same engine functions the API handlers call and never imports the API.  See
docs/console.md.
"""
