"""Engine-neutral science steps: plain functions and classes that jobflow and AiiDA adapters wrap."""
