/** Software version, sent in Server/User-Agent headers and node records. Kept in step with package.json by a test. */
export const VERSION = '0.1.0'
