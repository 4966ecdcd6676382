"""The AiiDA engine: data types, calcfunctions around the campaign stages and the work chains that schedule them
(entry points ``sus2.*``), and the profiles they run in."""
