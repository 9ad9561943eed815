//! Decorators of [`NetworkBackend`](super::NetworkBackend) (metrics, write fencing) change
//! only the effectful calls; [`delegate_pure_backend_methods`] writes the pure ones.

/// Inside an `impl NetworkBackend for Decorator`, passes every pure method of the trait
/// through to the field named by the argument (an `Arc<dyn NetworkBackend>` or any backend).
/// Methods with a default are passed through too: a decorator that left one to its default
/// would silently replace the wrapped backend's answer (its singletons, its teardown order).
/// `observe`, `apply` and `delete` stay for the decorator to write.
#[macro_export]
macro_rules! delegate_pure_backend_methods {
    ($inner:ident) => {
        fn kind(&self) -> $crate::api::BackendKind {
            self.$inner.kind()
        }

        fn capabilities(&self) -> $crate::backend::Capabilities {
            self.$inner.capabilities()
        }

        fn validate(
            &self,
            plan: &$crate::plan::NetworkPlan,
        ) -> ::std::vec::Vec<$crate::backend::ValidationIssue> {
            self.$inner.validate(plan)
        }

        fn targets(
            &self,
            plan: &$crate::plan::NetworkPlan,
        ) -> ::std::collections::BTreeSet<$crate::backend::Target> {
            self.$inner.targets(plan)
        }

        fn render(
            &self,
            plan: &$crate::plan::NetworkPlan,
            observed: &::std::collections::BTreeMap<
                $crate::backend::Target,
                $crate::backend::Observed,
            >,
        ) -> ::std::result::Result<$crate::backend::DesiredState, $crate::backend::BackendError> {
            self.$inner.render(plan, observed)
        }

        fn assess(
            &self,
            plan: &$crate::plan::NetworkPlan,
            observed: &::std::collections::BTreeMap<
                $crate::backend::Target,
                $crate::backend::Observed,
            >,
        ) -> $crate::backend::Health {
            self.$inner.assess(plan, observed)
        }

        fn waits_for_links(&self, key: &$crate::backend::ObjectKey) -> bool {
            self.$inner.waits_for_links(key)
        }

        fn candidate_targets(&self, member: &str) -> ::std::vec::Vec<$crate::backend::Target> {
            self.$inner.candidate_targets(member)
        }

        fn singletons(
            &self,
            plan: &$crate::plan::NetworkPlan,
        ) -> ::std::vec::Vec<$crate::backend::Singleton> {
            self.$inner.singletons(plan)
        }

        fn deletion_order(&self, key: &$crate::backend::ObjectKey) -> u8 {
            self.$inner.deletion_order(key)
        }

        fn teardown_phase(&self, target: &$crate::backend::Target) -> u8 {
            self.$inner.teardown_phase(target)
        }

        fn member_access(&self) -> ::std::vec::Vec<$crate::backend::AccessRule> {
            self.$inner.member_access()
        }

        fn member_kinds(&self) -> ::std::vec::Vec<$crate::kubernetes::ManagedKind> {
            self.$inner.member_kinds()
        }

        fn own_namespaces(&self) -> ::std::vec::Vec<::std::string::String> {
            self.$inner.own_namespaces()
        }
    };
}
