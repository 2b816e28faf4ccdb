"""Channel connectors. Each subpackage has a dependency-free ``manifest`` module; its
runtime (and its SDK) is imported only when the channel is enabled in config."""
