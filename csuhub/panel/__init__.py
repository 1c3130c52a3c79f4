"""The operators' web panel: server-rendered pages (aiohttp-jinja2) and plain ES
modules, in French (the default) and English, with no Node build step.

Each page area is one module (``cameras``, ``playback``, ``incidents``...) with
its own route table, templates under ``templates/<area>/``, ES modules under
``static/`` and French catalogue ``locale/fr/LC_MESSAGES/<area>.po``; ``app``
mounts them all. The pages read and write through the same JSON API as every
other client (the session cookie and its CSRF header), so the panel adds no
second way to change anything and every action is audited where the API
audits it.
"""
