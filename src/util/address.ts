/** `address:port` with IPv6 in brackets, as listen flags and URLs want it. */
export const hostPort = (h: {address: string; family: 4 | 6}, port: number) =>
  h.family === 6 ? `[${h.address}]:${port}` : `${h.address}:${port}`

/** The host's own address as a one-address network. */
export const hostCidr = (h: {address: string; family: 4 | 6}) => `${h.address}/${h.family === 4 ? 32 : 128}`
