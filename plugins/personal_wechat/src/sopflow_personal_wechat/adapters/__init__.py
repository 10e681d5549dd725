"""Gateway adapters: each speaks one gateway's wire protocol and offers ``port.GatewayPort``."""
