"""rlsft's own tiny text model (tiny-arithmetic/) and the script that trains it (tiny_lm.py)."""
