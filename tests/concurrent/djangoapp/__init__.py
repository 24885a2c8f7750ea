"""A small Django project for plait's concurrent-call tests: seats that can be oversold."""
