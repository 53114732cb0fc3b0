"""In-memory fakes of berth's ports, for service tests that need no embedded AWS.

Each fake subclasses the adapter it stands in for and is held honest by a contract test in tests/contracts, which
runs the same checks against the fake and against the adapter on moto and localaws.
"""
