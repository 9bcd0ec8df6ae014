pytest_plugins = ["mcutool.pytest_plugin"]
