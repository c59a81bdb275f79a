"""Stateful emulators of the Jira, Trello and Asana REST APIs, and generated organisations to seed them.

They ship in the bridge's distribution for `bridge demo` and `bridge sandbox ...`, the tests and the
benchmarks, but sit outside the `bridge` package: only `bridge.demo` and the CLI's sandbox commands import
them, inside functions, so no other command loads them.
"""
