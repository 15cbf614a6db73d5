"""The 2018 story: a maker's servers go dark, a ban, a narrow licence, its lapse."""
