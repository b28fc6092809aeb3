"""Web pages of the league: thin views over ``races.services``."""
