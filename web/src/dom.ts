// Small DOM helpers: no framework, just elements.

/** The element with `id`; throws if the page lacks it. */
export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`no element #${id}`);
  return element as T;
}

/** A new element with text content or children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { [name: string]: string } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") element.className = value;
    else element.setAttribute(name, value);
  }
  element.append(...children);
  return element;
}

/** A table row of text cells; cells of `numeric` columns align right. */
export function row(cells: (Node | string)[], numeric: number[] = []): HTMLTableRowElement {
  return el(
    "tr",
    {},
    ...cells.map((cell, i) => el("td", numeric.includes(i) ? { class: "num" } : {}, cell)),
  );
}
