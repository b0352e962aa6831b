"""Banten gazetteer: agencies, regions and outside places as data, and the recogniser over them."""
