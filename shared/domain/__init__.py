"""The pure core: Halo's events, policy, routing, SIGNL4's payload and notifications, the write-back plan. No I/O."""
