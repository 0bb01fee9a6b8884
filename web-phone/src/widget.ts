/**
 * The call button any website can carry:
 *   <script src="https://<gateway>/widget.js" data-call-url="<slug or full call URL>" async></script>
 * A floating button in the page's corner opens the gateway's web phone for that call URL in a frame
 * (its own origin: its microphone, token and call stay the gateway's, the host page cannot reach into
 * them). The button lives in a shadow root, so the host page's styles do not restyle it and ours do not
 * leak out. The frame is made at the first open, not at load: a page view alone asks for no call token.
 * A room instead of a call URL: data-room="<room id or the room's full URL>" opens the room's page.
 * Optional attributes: data-label (the button's text, "Call us"), data-position ("left" for the left corner).
 * Served by src/http/webPhone.ts, bundled by esbuild like the phone.
 */
(() => {
  const script = document.currentScript as HTMLScriptElement | null;
  if (!script) return;
  const gateway = new URL(script.src, location.href);
  const room = (script.dataset['room'] ?? '').trim();
  const target = room || (script.dataset['callUrl'] ?? '').trim();
  if (!target) {
    console.warn('callgate widget: data-call-url is missing (a call URL slug like "demo", or its full URL), or data-room (a room id or URL)');
    return;
  }
  const phoneUrl = /^https?:\/\//i.test(target) ? new URL(target) : new URL(`/${room ? 'r' : 'c'}/${encodeURIComponent(target)}`, gateway.origin);
  const label = script.dataset['label'] ?? (room ? 'Join the conversation' : 'Call us');
  const side = script.dataset['position'] === 'left' ? 'left' : 'right';

  const host = document.createElement('div');
  host.setAttribute('data-callgate-widget', '');
  const root = host.attachShadow({ mode: 'open' });
  const css = `
:host { all: initial; }
.button { position: fixed; ${side}: 1.25rem; bottom: 1.25rem; z-index: 2147483646; display: flex; align-items: center; gap: 0.5rem;
  font: 600 1rem/1 system-ui, sans-serif; color: #fff; background: #1f6e30; border: 0; border-radius: 2rem; padding: 0.9rem 1.2rem;
  box-shadow: 0 4px 14px rgba(0,0,0,.3); cursor: pointer; }
.button:focus-visible { outline: 3px solid #2a7de1; outline-offset: 3px; }
.button svg { width: 1.2rem; height: 1.2rem; fill: currentColor; }
.panel { position: fixed; ${side}: 1.25rem; bottom: 5rem; z-index: 2147483647; width: min(24rem, calc(100vw - 2.5rem)); height: min(36rem, calc(100vh - 7rem));
  background: #fff; border-radius: 0.8rem; box-shadow: 0 8px 30px rgba(0,0,0,.35); overflow: hidden; display: flex; flex-direction: column; }
.panel[hidden] { display: none; }
.bar { display: flex; justify-content: flex-end; background: #1f6e30; }
.close { font: 600 0.9rem system-ui, sans-serif; color: #fff; background: transparent; border: 0; padding: 0.5rem 0.8rem; cursor: pointer; }
.close:focus-visible { outline: 3px solid #fff; outline-offset: -3px; }
iframe { border: 0; flex: 1; width: 100%; }`;
  // A constructed stylesheet: a host page whose CSP forbids inline styles would refuse a <style>.
  if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement('style');
    style.textContent = css;
    root.append(style);
  }
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button';
  button.setAttribute('aria-expanded', 'false');
  button.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z"/></svg>';
  button.append(document.createTextNode(label));
  const panel = document.createElement('div');
  panel.className = 'panel';
  panel.hidden = true;
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', label);
  const bar = document.createElement('div');
  bar.className = 'bar';
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'close';
  close.textContent = 'Close';
  bar.append(close);
  panel.append(bar);
  root.append(panel, button);

  let frame: HTMLIFrameElement | undefined;
  const setOpen = (open: boolean): void => {
    if (open && !frame) {
      frame = document.createElement('iframe');
      frame.title = label;
      // The phone needs the microphone and to play the agent's voice; a frame from another origin gets
      // neither unless the host page delegates them here.
      frame.allow = 'microphone; autoplay';
      frame.src = phoneUrl.href;
      panel.append(frame);
    }
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    // Closing hides the panel; a call in progress goes on (the frame stays), as on a real phone.
    if (open) frame?.focus();
    else button.focus();
  };
  button.addEventListener('click', () => setOpen(panel.hidden));
  close.addEventListener('click', () => setOpen(false));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') setOpen(false);
  });
  const attach = (): void => {
    document.body.append(host);
  };
  if (document.body) attach();
  else document.addEventListener('DOMContentLoaded', attach, { once: true });
})();
