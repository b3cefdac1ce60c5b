"""Service-request rules: pure, vectorised functions of (feed, SRs, settings, T). See docs/RULES.md."""
