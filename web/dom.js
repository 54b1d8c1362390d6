// Building the page's elements: one helper for the modules that draw (crisis.js, devices.js,
// host_panel.js, moderation.js, and admin.js in the console), so a property is set the same
// way everywhere.

export function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
        if (key === 'testid') node.setAttribute('data-testid', value);
        else if (key === 'onclick') node.addEventListener('click', value);
        else if (key in node) node[key] = value;
        else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
}
