// Minimal stand-in for node's "url" (pulled in by @oozcitak/url via xmlbuilder2).
export const domainToASCII = (d) => d;
export const domainToUnicode = (d) => d;
export const URL = globalThis.URL;
export default { domainToASCII, domainToUnicode, URL };
