namespace Microsoft.ML.ActivationAtlas.Inversion.Objectives;

/// <summary>What an icon maximises at the objective position of the layer.</summary>
public enum ObjectiveKind
{
    /// <summary>lucid's <c>direction_neuron</c>: the dot product a . t.</summary>
    Direction,

    /// <summary>The activation atlas objective: (a . t) x max(floor, cos(a, t))^n (n = 4, floor = 0.1 by default).</summary>
    DirectionCosine,
}
