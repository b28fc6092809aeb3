"""The league's REST API (Django REST Framework): thin views over ``races.services``."""
