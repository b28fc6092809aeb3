"""Broker module for the dramatiq CLI (`manage.py rundramatiq` runs `python -m dramatiq league.worker_entry …`).

Importing it sets Django up, whose LeagueConfig.ready() installs the broker from settings; the CLI
then imports the actor modules, which declare their actors on that broker.
"""

import os

import django
import dramatiq

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "league.settings")
django.setup()

broker = dramatiq.get_broker()
