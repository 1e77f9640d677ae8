"""Figures from a results DataFrame, the Dash app and static reports. Never imports ray."""
