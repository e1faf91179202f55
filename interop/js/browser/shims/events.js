// Minimal stand-in for node's "events" (pulled in by xmlbuilder2, not used by the SEG path).
export class EventEmitter {
  constructor() { this._l = {}; }
  on(name, fn) { (this._l[name] = this._l[name] || []).push(fn); return this; }
  emit(name, ...args) { (this._l[name] || []).forEach((fn) => fn(...args)); return true; }
  removeAllListeners() { this._l = {}; return this; }
}
export default { EventEmitter };
