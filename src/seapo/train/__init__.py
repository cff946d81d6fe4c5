"""Preference training on injected pairs (KTO, DPO, IPO, SimPO, ORPO) through TRL."""
