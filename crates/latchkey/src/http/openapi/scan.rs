//! The route scan: no source file of this crate adds a route except through
//! utoipa-axum's `routes!`, so no route can be served without its operation in the
//! document. Every `.rs` file under `src/` is parsed (`syn`), and any call of a method
//! named `route`, `route_service`, `nest` or `nest_service` outside `#[cfg(test)]`
//! code is a finding: on an axum `Router` or on an `OpenApiRouter` alike, those add
//! routes the document does not describe.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// Methods that add routes without documenting them.
const UNDOCUMENTED: [&str; 4] = ["route", "route_service", "nest", "nest_service"];

/// Calls of [`UNDOCUMENTED`] methods, by enclosing function.
#[derive(Default)]
struct Finder {
    function: Vec<String>,
    found: Vec<String>,
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_cfg_test(&item.attrs) {
            visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if is_cfg_test(&item.attrs) {
            return;
        }
        self.function.push(item.sig.ident.to_string());
        visit::visit_item_fn(self, item);
        self.function.pop();
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.function.push(item.sig.ident.to_string());
        visit::visit_impl_item_fn(self, item);
        self.function.pop();
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let method = call.method.to_string();
        if UNDOCUMENTED.contains(&method.as_str()) {
            let within = self.function.last().map_or("(top level)", String::as_str);
            self.found.push(format!(".{method}(...) in {within}"));
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_item_macro(&mut self, item: &'ast syn::ItemMacro) {
        let name = item.ident.as_ref().map(|i| format!("macro {i}"));
        self.function.extend(name.clone());
        visit::visit_item_macro(self, item);
        if name.is_some() {
            self.function.pop();
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // A macro's body is tokens (`macro_rules!` rules, handler-defining macros):
        // look for `. name (` in them at any depth.
        let within = self.function.last().cloned().unwrap_or_else(|| {
            let name = mac.path.segments.last().map(|s| s.ident.to_string());
            format!("macro {}", name.unwrap_or_default())
        });
        self.scan_tokens(mac.tokens.clone(), &within);
        visit::visit_macro(self, mac);
    }
}

impl Finder {
    fn scan_tokens(&mut self, tokens: proc_macro2::TokenStream, within: &str) {
        use proc_macro2::{Delimiter, TokenTree};
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => self.scan_tokens(group.stream(), within),
                TokenTree::Punct(dot) if dot.as_char() == '.' => {
                    if let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(args))) =
                        (tokens.get(i + 1), tokens.get(i + 2))
                    {
                        let name = name.to_string();
                        if args.delimiter() == Delimiter::Parenthesis
                            && UNDOCUMENTED.contains(&name.as_str())
                        {
                            self.found.push(format!(".{name}(...) in {within}"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn findings(source: &str) -> Vec<String> {
    let file = syn::parse_file(source).expect("the source parses");
    let mut finder = Finder::default();
    finder.visit_file(&file);
    finder.found
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_route_goes_through_routes_macro() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("http/auth.rs")),
        "the scan reads the handlers"
    );
    let mut found = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("a readable file");
        for finding in findings(&source) {
            found.push(format!("{}: {finding}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "routes added without an OpenAPI description (use `.routes(routes!(handler))` with a \
         `#[utoipa::path]` on the handler):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_undocumented_routes() {
    let source = r#"
        fn router() -> Router {
            Router::new()
                .route("/a", get(a))
                .nest("/b", other())
        }
        macro_rules! more { () => { fn hidden(r: Router) -> Router { r.route_service("/c", s) } }; }
        fn fine() { let _ = vec![1].iter().map(|x| x.route); }
        impl X { fn routes(r: OpenApiRouter) -> OpenApiRouter { r.routes(routes!(x)).nest_service("/d", s) } }
        #[cfg(test)]
        mod tests { fn t(r: Router) -> Router { r.route("/boom", get(boom)) } }
    "#;
    let found = findings(source);
    assert_eq!(
        found,
        [
            ".nest(...) in router",
            ".route(...) in router",
            ".route_service(...) in macro more",
            ".nest_service(...) in routes",
        ],
        "{found:?}"
    );
}
