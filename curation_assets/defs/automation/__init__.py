"""Jobs, the nightly schedule, the automation and crash-recovery sensors, the conditions."""
