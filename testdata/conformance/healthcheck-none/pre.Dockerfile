FROM lamina-test-base
HEALTHCHECK --interval=1m CMD true
