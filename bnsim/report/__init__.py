"""Reports: text tables, plots and timelines made from results. Never runs a simulation."""
