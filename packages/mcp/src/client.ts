/*
 * The MCP SDK's own client, for programs and tests of this workspace that speak to the mail
 * server: the SDK is a dependency of this package only, so its client is reached through here.
 */
export { Client } from "@modelcontextprotocol/sdk/client/index.js";
export { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
export { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
export { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
export type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
