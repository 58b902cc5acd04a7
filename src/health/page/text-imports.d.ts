// Text imports of the status page's files (see assets.ts; a file named assets.d.ts would be taken as assets.ts's own declarations and ignored).
declare module "*/client/app.js" {
  const text: string;
  export default text;
}
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
