"""The chat sidebar (侧边栏): the page WeCom opens beside a chat, and the shared
jsapi tickets that sign it."""
